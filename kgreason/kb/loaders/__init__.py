"""Readers and writers of knowledge-base files: RDF (rdflib / pyoxigraph), TSV/CSV, split folders, networkx."""
