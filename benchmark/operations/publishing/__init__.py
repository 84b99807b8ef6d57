"""Publishing results: a submission file from runs (scores, gallery), and its reproduction from the recorded identity."""
