"""The `foldgate.report/2` report: one builder (`build`), its JSON form (`jsonio`,
checked by `schema`), and its HTML page (`html`, charts in `svg`)."""

from .html import render_html, write_html_report
from .jsonio import report_to_json, to_jsonable, write_json_report
from .schema import SCHEMA_ID, SCHEMA_PATH, ReportSchemaError, load_schema, validate_report
from .svg import MAX_CURVE_POINTS, downsample

__all__ = ["render_html", "write_html_report", "report_to_json", "to_jsonable", "write_json_report",
           "SCHEMA_ID", "SCHEMA_PATH", "ReportSchemaError", "load_schema", "validate_report",
           "MAX_CURVE_POINTS", "downsample"]
