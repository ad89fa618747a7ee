"""Renderers: report data (plain dicts) -> text, Markdown, HTML, JSON, CSV. None of them computes anything."""
