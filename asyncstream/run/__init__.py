"""The local runner behind ``asyncstream run``: a custom task against a hub, no broker.

It feeds the given paths to a hub input stream while the task reads them, calls the
task with a status object, and reports what the hub stored. The hub is either one
the user names or an embedded one (the ``hub`` extra) in a scratch directory.
"""
