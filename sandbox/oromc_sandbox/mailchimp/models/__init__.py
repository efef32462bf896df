"""State and rules without HTTP of the e-commerce API (`ecommerce`) and of `/batches` (`batches`).

Their handlers are in `..responses`; the audience and campaign models are the package's own modules
(`store`, `validation`, `campaigns`, `engagement`, `automations`).
"""
