"""Admin forms of the flag editor: one field per flag, built from its spec (type and bounds)."""

from __future__ import annotations

from django import forms

from flags.models import GlobalFlag, TenantFlagSet
from flags.registry import FlagValueError, specs, value_text
from flags.selectors import flags_explain


def flag_field(key: str, *, inherit_label: str) -> forms.Field:
    """A form field for one flag; the empty choice means "not set here" (inherit)."""
    spec = specs()[key]
    if spec.type is bool:
        return forms.TypedChoiceField(
            label=key,
            required=False,
            choices=[("", inherit_label), ("true", "true"), ("false", "false")],
            coerce=lambda text: text == "true",
            empty_value=None,
            help_text=spec.help,
        )
    if spec.type is list:
        return forms.CharField(
            label=key,
            required=False,
            empty_value=None,
            help_text=f"{spec.help} Allowed: {spec.bounds_text()}; empty: {inherit_label}.",
        )
    return forms.IntegerField(
        label=key,
        required=False,
        min_value=spec.minimum,
        max_value=spec.maximum,
        help_text=f"{spec.help} Allowed: {spec.bounds_text()}; empty: {inherit_label}.",
    )


def _initial(value: object) -> object:
    """What a flag field shows for a stored value (booleans as the choice text)."""
    if isinstance(value, list):
        return ", ".join(value)
    return value_text(value) if isinstance(value, bool) else value


def _clean_flag(form: forms.Form, field: str, key: str) -> object:
    value = form.cleaned_data.get(field)
    if value is None:
        return None
    try:
        if isinstance(value, str):  # a list flag's text (allowedOrigins)
            return specs()[key].parse(value)
        return specs()[key].validate(value)
    except FlagValueError as exc:
        raise forms.ValidationError(exc.reason) from None


class GlobalFlagForm(forms.ModelForm):
    """Edit one global flag; the field is built for the flag's type and bounds."""

    setting = forms.CharField(required=False)

    class Meta:
        model = GlobalFlag
        fields: list[str] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        key = self.instance.key
        label = f"built-in default ({value_text(specs()[key].default)})"
        self.fields["setting"] = flag_field(key, inherit_label=label)
        self.initial["setting"] = _initial(self.instance.value)

    def clean_setting(self):
        return _clean_flag(self, "setting", self.instance.key)

    def _post_clean(self):
        # The instance is written by flags.services, never by the form.
        pass


class TenantFlagsForm(forms.ModelForm):
    """One optional override field per registered flag; empty means "follow the global value".

    The fields are built here, per flag, so the admin passes `fields=()` when it makes the form
    class (TenantFlagSetAdmin.get_form): the flag fields are not model fields.
    """

    class Meta:
        model = TenantFlagSet
        fields: list[str] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        explained = flags_explain(tenant_id=self.instance.pk) if self.instance.pk else {}
        for key in specs():
            current = explained.get(key)
            inherit = f"global value ({value_text(current.global_value)})" if current else "global"
            self.fields[key] = flag_field(key, inherit_label=inherit)
            if current is not None and current.tenant_value is not None:
                self.initial[key] = _initial(current.tenant_value)

    def clean(self):
        cleaned = super().clean()
        for key in specs():
            if key in self.fields and key not in self.errors:
                try:
                    cleaned[key] = _clean_flag(self, key, key)
                except forms.ValidationError as exc:
                    self.add_error(key, exc)
        return cleaned

    def _post_clean(self):
        pass
