"""Alertas diarias de vencimiento de lotes y de stock."""
