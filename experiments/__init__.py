"""Experiments: running agents on drift scenarios, recording, analysing and plotting them."""
