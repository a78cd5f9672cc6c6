"""Models: the knowledge-fused encoder + GNN model, its variants, and the relation-aware GNN."""
