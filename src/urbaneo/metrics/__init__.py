"""Evaluation metrics shared by the products (segmentation scores, landscape shape metrics)."""
