"""Knowledge-graph embeddings: training and filtered link-prediction evaluation."""
