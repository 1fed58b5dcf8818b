"""The audit log: every change organisers make, who made it and what changed."""
