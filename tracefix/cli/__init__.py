"""The top layer: the typer commands (`main`), editor diagnostics and the hook/VS Code integrations."""
