"""Synthetic demo data: the raw files a first run ingests, with the ground truth tests score."""

from orchestration.demo.generation import PERSONA_SHARES, PERSONAS, GenerateResult, generate

__all__ = ["PERSONAS", "PERSONA_SHARES", "GenerateResult", "generate"]
