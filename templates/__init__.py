"""The default templates (site pages, email digests, web archive); overridable per site."""
