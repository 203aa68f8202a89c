"""The loops that serve a workspace: dispatching (poll, claim, submit), watching, recovery, housekeeping,
the one path for provider calls, and the pure decisions they carry out."""
