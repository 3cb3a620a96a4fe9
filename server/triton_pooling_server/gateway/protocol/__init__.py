"""Wire formats: request parsing and validation, response bodies, vector encodings."""
