"""The web dashboard: queues with live counts and a throughput chart, jobs by phase with
search, a job's attempts, events, dependencies and runs, and (when allowed) actions.

`board` keeps what it shows: one list-and-watch per resource (the operator's
own informers) into rows built by `core.summary`, and tells listeners when
something changed. `handlers` answers the pages, a JSON API paged and
filtered on the server, Server-Sent Events for live updates, and the
actions, which act with the identity the dashboard runs as; `server` puts
them behind a guard and serves them. `static/` is the frontend: plain
HTML, CSS and JavaScript, nothing fetched from elsewhere at run time.
"""
