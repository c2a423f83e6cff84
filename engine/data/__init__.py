"""Bar data: the store (`store`, `arrow_file`, `bars`, `gaps`), CSV/Parquet import
(`importer`), market-data sources (`sources`), symbols and the NYSE calendar."""
