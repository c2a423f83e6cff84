"""Market-data sources that fill the bar store."""
