"""Chinese text helpers shared by the services: place names and company names."""

from salesrail.text.company_names import (
    company_block,
    company_region,
    company_similarity,
    key_similarity,
    normalize_company_name,
    regions_conflict,
)
from salesrail.text.regions import (
    City,
    Province,
    city_names,
    county_names,
    province_names,
    resolve_city,
    resolve_province,
)

__all__ = [
    "City",
    "Province",
    "city_names",
    "company_block",
    "company_region",
    "company_similarity",
    "county_names",
    "key_similarity",
    "normalize_company_name",
    "province_names",
    "regions_conflict",
    "resolve_city",
    "resolve_province",
]
