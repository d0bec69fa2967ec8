"""`fleetctl console`: the operator's console on a running service, over the broker's control topics
(so from any machine, under its own credentials and role).

    client.py    requests and answers (correlation id, timeout), the live topics
    grammar.py   the command language (shared by the prompt and the `fleetctl` subcommands)
    actions.py   a parsed command -> request -> rendering; the live view's data
    render.py    rich tables
    app.py       the prompt_toolkit console (completion, history, live table while typing)
    cli.py       `fleetctl console` and `fleetctl vehicles|orders|order|vehicle|fleet|nofly|...`
"""
