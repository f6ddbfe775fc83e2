//! The WSDL and schemas served at `GET /?wsdl` and `GET /schemas/{name}`.

/// The WSDL as kept in `wsdl/`, with its placeholder address.
pub const WSDL: &str = include_str!("../../wsdl/provisioning.wsdl");
const PLACEHOLDER: &str = "http://localhost:8888/";

/// The schemas the WSDL imports, by file name.
pub const SCHEMAS: &[(&str, &str)] = &[
    (
        "BasicTypes.xsd",
        include_str!("../../schemas/BasicTypes.xsd"),
    ),
    (
        "ProvisioningTypes.xsd",
        include_str!("../../schemas/ProvisioningTypes.xsd"),
    ),
];

/// The WSDL with the service address a client should call, e.g. `http://host:8888/`.
pub fn with_address(address: &str) -> String {
    WSDL.replace(
        &format!("location=\"{PLACEHOLDER}\""),
        &format!("location=\"{}\"", super::xml::escape(address)),
    )
}

pub fn schema(name: &str) -> Option<&'static str> {
    SCHEMAS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soap::attributes::AttributeId;
    use crate::soap::commands::Command;

    #[test]
    fn address_is_replaced() {
        let w = with_address("https://provd.example:8888/");
        assert!(w.contains(r#"location="https://provd.example:8888/""#));
        assert!(!w.contains(PLACEHOLDER));
    }

    #[test]
    fn schemas_enumerate_every_command_and_attribute() {
        let types = schema("ProvisioningTypes.xsd").unwrap();
        for c in Command::ALL {
            assert!(types.contains(&format!("\"{}\"", c.name())), "{c}");
        }
        for a in AttributeId::ALL {
            assert!(types.contains(&format!("\"{}\"", a.name())), "{a}");
        }
    }

    #[test]
    fn wsdl_declares_every_operation() {
        for op in crate::soap::Operation::ALL {
            assert!(
                WSDL.contains(&format!("name=\"{}\"", op.element())),
                "{op:?}"
            );
        }
    }
}
