"""nucleus: a small, fast, Greengrass-compatible device runtime."""

__version__ = "0.1.0"

# The version the built-in `aws.greengrass.Nucleus` component reports (GGC_VERSION, dependency
# resolution): recipes written for Greengrass ask for `>=2.x`, so we present a 2.x version.
GREENGRASS_COMPAT_VERSION = "2.14.0"
