"""`engine.sources`: a former public path (`engine.sources.alpaca`), kept for code
written against it: the market-data sources live in `engine.data.sources`."""
