"""What a user reads about a study: `hpo status` / `hpo best`, the progress line, export, the dashboard."""
