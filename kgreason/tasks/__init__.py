"""Task definitions: sequence, token and relation classification, and multiple choice."""
