"""HTML reports: one self-contained page per report (the evaluation report, the data inspection)."""
