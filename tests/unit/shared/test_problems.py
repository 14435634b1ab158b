from salesrail.http.problems import field_name


def test_field_names_read_as_json_paths() -> None:
    assert field_name(("body", "phone")) == "phone"
    assert field_name(("body", "tags", 2)) == "tags[2]"
    assert field_name(("query", "from")) == "from"
    assert field_name(("body",)) == "body"
    assert field_name(("body", "contacts", 0, "phone")) == "contacts[0].phone"
