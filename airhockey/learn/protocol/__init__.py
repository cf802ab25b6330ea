"""The comparison protocol: arms, classifier jobs, the run log, summaries with bootstrap
intervals, the typed results record, the report, the leaderboard benchmark and the pipeline."""
