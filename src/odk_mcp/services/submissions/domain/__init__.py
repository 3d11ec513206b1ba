"""Pure rules of the submissions service: reading submission XML, evaluating ODK XPath. No I/O."""
