"""Data of the reference use case: synthetic card transactions and their offline source."""
