"""`engine.sources`, kept as a path while the pipeline still imports
`engine.sources.alpaca`: the market-data sources live in `engine.data.sources`."""
