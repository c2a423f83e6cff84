"""The `foldgate` command line: parse, call the engine, print."""
