"""State and rules without HTTP: the e-commerce API (`ecommerce`, `ecommerce_orders`), `/batches`.

Their handlers are in `..responses`; the audience and campaign models are the package's own modules
(`store`, `validation`, `campaigns`, `engagement`, `automations`).
"""
