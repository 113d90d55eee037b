"""One tenant filter for every admin list: a search box for the slug, never a list of tenants."""

from __future__ import annotations

import uuid

from django.contrib import admin
from django.contrib.admin.views.main import ERROR_FLAG, PAGE_VAR

from tenants.models import Tenant


class TenantFilter(admin.ListFilter):
    """Filter a list by its `tenant`: a slug picks that tenant, other text every slug containing it.

    Django's related-field filter renders one link per tenant (1 MiB per page at 10,000 tenants);
    this renders one text input, whatever the number of tenants. `tenant__id__exact=<uuid>` (the
    links other admin pages make to a tenant's rows) selects a tenant too. The search form posts
    the list's other parameters back (search, ordering, other filters), the page number excepted.
    """

    title = "tenant"
    parameter_name = "tenant"
    id_parameter = "tenant__id__exact"
    template = "admin/tenants/tenant_filter.html"

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        for name in self.expected_parameters():
            if name in params:
                value = params.pop(name)[-1].strip()
                if value:
                    self.used_parameters[name] = value
        self.tenant = self._chosen()
        asked = self.used_parameters.get(self.parameter_name, "")
        self.text = self.tenant.slug if self.tenant else asked
        skip = {*self.expected_parameters(), PAGE_VAR, ERROR_FLAG}
        self.kept = [
            (name, value)
            for name, values in request.GET.lists()
            if name not in skip
            for value in values
        ]

    def _chosen(self) -> Tenant | None:
        """The one tenant asked for (by id, or by its exact slug), if there is one."""
        by_id = self.used_parameters.get(self.id_parameter)
        if by_id is not None:
            try:
                return Tenant.objects.filter(pk=uuid.UUID(by_id)).first()
            except ValueError:
                return None
        text = self.used_parameters.get(self.parameter_name)
        return Tenant.objects.filter(slug=text.lower()).first() if text else None

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str]:
        return [self.parameter_name, self.id_parameter]

    def queryset(self, request, queryset):
        if self.tenant is not None:
            return queryset.filter(tenant_id=self.tenant.pk)
        if self.id_parameter in self.used_parameters:
            return queryset.none()  # an id that is no tenant's
        text = self.used_parameters.get(self.parameter_name)
        if not text:
            return queryset
        matching = Tenant.objects.filter(slug__icontains=text).values("pk")
        return queryset.filter(tenant_id__in=matching)

    def choices(self, changelist):
        active = bool(self.used_parameters)
        yield {
            "selected": not active,
            "query_string": changelist.get_query_string(remove=self.expected_parameters()),
            "display": "All",
        }
        if not active:
            return
        if self.tenant is not None:
            display = f"{self.tenant.slug} ({self.tenant.name})"
        else:
            display = f"slug contains “{self.text}”"
        yield {
            "selected": True,
            "query_string": changelist.get_query_string(),
            "display": display,
        }
