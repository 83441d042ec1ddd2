"""Runtime plumbing shared by Batchyard services. No domain logic lives here."""
