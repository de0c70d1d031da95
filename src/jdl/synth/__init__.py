"""Synthetic national records with example cohorts and a known, planted effect."""

from jdl.synth.generate import CohortSummary, SynthSummary, generate
from jdl.synth.params import CohortPlan, SynthParameters

__all__ = ["CohortPlan", "CohortSummary", "SynthParameters", "SynthSummary", "generate"]
