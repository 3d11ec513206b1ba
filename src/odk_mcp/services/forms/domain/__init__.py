"""Pure rules of the forms service: reading XForms safely into a field schema. No I/O."""
