"""Capital and operating cost: bill-of-materials prices, annualised capital and $ per GPU-hour."""

from __future__ import annotations

HOURS_PER_YEAR = 8760.0


def capital_recovery_factor(discount_rate: float, lifetime_years: float) -> float:
    """Annual payment per dollar of capital repaid over `lifetime_years` at `discount_rate`.

    .. math:: CRF = \\frac{r (1+r)^n}{(1+r)^n - 1}, \\qquad CRF = 1/n \\text{ when } r = 0

    Reference: standard annuity formula (e.g. NREL, "Simple Levelized Cost of Energy" documentation).
    """
    if lifetime_years <= 0:
        raise ValueError("lifetime_years must be positive")
    if discount_rate == 0:
        return 1.0 / lifetime_years
    growth = (1.0 + discount_rate) ** lifetime_years
    return discount_rate * growth / (growth - 1.0)


def annualised_capex_usd_per_year(
    it_capex_usd: float,
    facility_capex_usd: float,
    discount_rate: float,
    it_lifetime_years: float,
    facility_lifetime_years: float,
) -> float:
    """Capital cost per year: IT and facility each repaid over their own lifetime.

    .. math:: C_{yr} = C_{IT}\\,CRF(r, n_{IT}) + C_{fac}\\,CRF(r, n_{fac})
    """
    return it_capex_usd * capital_recovery_factor(discount_rate, it_lifetime_years) + facility_capex_usd * (
        capital_recovery_factor(discount_rate, facility_lifetime_years)
    )


def energy_cost_usd_per_year(facility_power_mw: float, price_usd_per_kwh: float, load_factor: float = 1.0) -> float:
    """Electricity bill per year at an average facility draw.

    .. math:: E_{\\$} = P_{fac}\\,[MW] \\times 1000 \\times 8760 \\times LF \\times p\\,[\\$/kWh]
    """
    return facility_power_mw * 1000.0 * HOURS_PER_YEAR * load_factor * price_usd_per_kwh


def usd_per_gpu_hour(annual_cost_usd: float, gpus: int, utilisation: float = 1.0) -> float:
    """Total cost of ownership per GPU-hour sold.

    .. math:: \\$/GPUh = \\frac{C_{yr}}{N_{GPU} \\times 8760 \\times u}
    """
    if gpus <= 0 or utilisation <= 0:
        raise ValueError("gpus and utilisation must be positive")
    return annual_cost_usd / (gpus * HOURS_PER_YEAR * utilisation)


def usd_per_million_tokens(usd_per_gpu_hour_value: float, tokens_per_s_per_gpu: float) -> float:
    """Cost of a million tokens from the GPU-hour price and the per-GPU token rate.

    .. math:: \\$/M = \\frac{\\$/GPUh \\times 10^6}{tok/s/GPU \\times 3600}

    Reference: SemiAnalysis InferenceX methodology (shared/reference/perf-calibration.md).
    """
    if tokens_per_s_per_gpu <= 0:
        return float("inf")
    return usd_per_gpu_hour_value * 1e6 / (tokens_per_s_per_gpu * 3600.0)


def facility_capex_usd_per_mw(economics) -> float:
    """Facility capital per MW of provisioned IT power, excluding the cooling plant and power equipment
    counted item by item in a design (building, substation works, generators and fit-out)."""
    return (
        economics.building_usd_per_mw
        + economics.substation_usd_per_mw
        + economics.generator_usd_per_mw
        + economics.electrical_fitout_usd_per_mw
        + economics.mechanical_fitout_usd_per_mw
    )


def system_usd_per_gpu_hour(
    catalog,
    system_name: str,
    region_name: str,
    pue: float = 1.2,
    network_capex_fraction: float = 0.08,
    load_factor: float = 0.8,
    economics_name: str = "default",
) -> float:
    """$ per GPU-hour of one system in one region without compiling a whole design.

    IT capital is the rack price plus a network share (`network_capex_fraction` of it, an estimate of a
    rail-optimised fat tree's cost against the racks it serves); facility capital scales with the rack's
    provisioned power. Opex is energy at `load_factor` of provisioned draw times PUE, maintenance and staff.

    .. math::
        C_{yr} = C_{IT}\\,CRF_{IT} + C_{fac}\\,CRF_{fac} + E_{\\$} + m\\,(C_{IT}+C_{fac}) + s\\,P_{IT}

    where :math:`P_{IT}` is the rack's provisioned power and :math:`E_{\\$}` uses the region's mid price.
    """
    from tokenfab.catalog.models import Economics, Region, System

    system = catalog.typed("systems", system_name, System)
    region = catalog.typed("regions", region_name, Region)
    economics = catalog.typed("economics", economics_name, Economics)
    it_mw = system.rack_power_max_kw / 1000.0
    it_capex = system.rack_cost_usd * (1.0 + network_capex_fraction)
    facility_capex = facility_capex_usd_per_mw(economics) * it_mw
    annual = annualised_capex_usd_per_year(
        it_capex,
        facility_capex,
        economics.discount_rate,
        economics.it_lifetime_years,
        economics.facility_lifetime_years,
    )
    annual += energy_cost_usd_per_year(it_mw * pue, region.price_usd_per_kwh_mid, load_factor)
    annual += economics.maintenance_fraction_of_capex_per_year * (it_capex + facility_capex)
    annual += economics.staff_usd_per_mw_year * it_mw
    return usd_per_gpu_hour(annual, system.gpus_per_rack)
