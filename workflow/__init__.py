"""Application services: the approval workflow, shared by the CLI, the flows, SMTP and the web."""
