"""Exports of submission data (CSV, CSV zip, XLSX, GeoJSON, SPSS, Parquet) from the read model."""
