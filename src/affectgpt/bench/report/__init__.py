"""Render scorer results: terminal tables, CSV/Markdown/LaTeX/JSON, and the HTML report."""
