"""Helpers shared by test packages: database servers and fresh databases."""
