"""Transfers: land what the API answers in storage."""
