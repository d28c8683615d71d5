"""What a user reads about a study: `hpo status` / `hpo best`, the live view of `hpo run`, `hpo report` (html/), export, the dashboard."""
