"""The Mailchimp sandbox's HTTP layer: parse the request, call the models, render the document.

One module per resource family (`audience`, `campaigns`, `reports`, `automations`); handlers are
`@mc_endpoint`s (`..common`) and raise `..exceptions` classes. The rules they call live in the model
modules of the package (`validation`, `members`, `campaigns`, `engagement`, `automations`, `store`).
The route table is `..urls`.
"""
