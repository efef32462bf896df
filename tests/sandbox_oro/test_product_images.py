"""Product images as Oro serves them (what tap-orocommerce reads for ``image_url``).

Sources: orocommerce ``src/Oro/Bundle/ProductBundle``:
* ``Tests/Functional/Api/RestJsonApi/ProductImageTest.php`` (``GET productimages?filter[product]=…``,
  ``include=image``, ``fields[files]=filePath``),
* ``Tests/Functional/Api/RestJsonApi/responses/get_product_image_include.yml`` and
  ``cget_product_image_filter_by_product.yml`` (relationships ``product``, ``types``, ``image``; the
  file's ``mimeType`` and ``filePath`` as a list of ``{url, dimension, url_webp}``),
* ``Resources/doc/api/file.md`` (``filePath``: relative URLs of the resized versions),
* ``Resources/doc/api/product_image_type.md`` (``productImageTypeType``: main, listing, additional).
"""

from __future__ import annotations

import re
from typing import Any

IMAGE_URL = re.compile(r"^/media/cache/attachment/filter/(?P<dim>product_\w+)/[0-9a-f]{32}/(?P<file>\d+)/[^/]+\.jpg$")


def _images(api: Any, **params: str) -> dict[str, Any]:
    r = api.get("/productimages", params=params)
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


def test_images_filtered_by_product_carry_product_types_and_image(api: Any) -> None:
    doc = _images(api, **{"filter[product]": "1,2,10", "sort": "id"})
    by_product = {i["relationships"]["product"]["data"]["id"]: i for i in doc["data"]}
    assert set(by_product) == {"1", "2"}  # product 10 (every tenth) has no image
    image = by_product["1"]
    assert set(image["relationships"]) == {"product", "types", "image"}
    assert image["relationships"]["image"]["data"]["type"] == "files"
    assert [t["type"] for t in image["relationships"]["types"]["data"]] == ["productimagetypes"]
    product = api.get("/products/1", params={"fields[products]": "images"}).json()["data"]
    assert product["relationships"]["images"]["data"] == [{"type": "productimages", "id": image["id"]}]
    assert api.get("/products/10", params={"fields[products]": "images"}).json()["data"]["relationships"][
        "images"]["data"] == []  # fmt: skip


def test_included_file_has_the_file_path_of_each_resized_version(api: Any) -> None:
    doc = _images(api, **{"filter[product]": "3", "include": "image,types"})
    included = {(r["type"], r["id"]): r for r in doc["included"]}
    image = doc["data"][0]
    file_ref = image["relationships"]["image"]["data"]
    file = included[(file_ref["type"], file_ref["id"])]
    assert file["attributes"]["mimeType"] == "image/jpeg"
    paths = file["attributes"]["filePath"]
    assert {p["dimension"] for p in paths} >= {"product_original", "product_large", "product_extra_large"}
    for path in paths:
        match = IMAGE_URL.match(path["url"])
        assert match, path
        assert (match["dim"], match["file"]) == (path["dimension"], file["id"])
        assert path["url_webp"] == path["url"] + ".webp"
    kind = included[("productimagetypes", image["relationships"]["types"]["data"][0]["id"])]
    assert kind["attributes"]["productImageTypeType"] == "main"


def test_sparse_file_path_only_and_read_only(api: Any) -> None:
    doc = _images(api, **{"filter[product]": "4", "include": "image", "fields[files]": "filePath"})
    (file,) = doc["included"]
    assert set(file["attributes"]) == {"filePath"}
    body = {"data": {"type": "productimages", "relationships": {
        "product": {"data": {"type": "products", "id": "4"}}}}}  # fmt: skip
    assert api.post("/productimages", body).status_code == 405
