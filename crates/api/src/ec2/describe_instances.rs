//! `DescribeInstances`: `InstanceId.N`, `Filter.N.Name`/`Filter.N.Value.M`, `DryRun` →
//! `reservationSet`, one reservation per instance (serialgate has no launch requests to group
//! instances by). `MaxResults` and `NextToken` are accepted and ignored: every match comes back
//! in one page, which SDK paginators handle as the last page.

use std::sync::Arc;

use console::policy::glob_match;
use console::{Action, Instance, InstanceId};

use crate::ec2::error::{Ec2Error, echo};
use crate::ec2::params::Params;
use crate::ec2::xml::{Xml, iso8601};
use crate::ec2::{Call, derived_hex};

const ACTION: &str = "DescribeInstances";

/// The validated request.
#[derive(Debug)]
pub struct Request {
    pub ids: Vec<InstanceId>,
    pub filters: Vec<InstanceFilter>,
    pub dry_run: bool,
}

/// What a filter looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    InstanceId,
    StateName,
    StateCode,
    InstanceType,
    AvailabilityZone,
    OwnerId,
    /// `tag:KEY`: the value of tag KEY.
    Tag(String),
    /// `tag-key`: any tag's key.
    TagKey,
}

/// One filter: the instance matches when the field matches any of the values, each of which may
/// use `*` and `?` as EC2 allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceFilter {
    pub field: Field,
    pub values: Vec<String>,
}

/// Parse: parameters → request. Unknown filter names are refused, as EC2 does, rather than
/// silently matching everything.
pub fn parse(p: &Params) -> Result<Request, Ec2Error> {
    let ids = p.instance_ids()?;
    let filters = p
        .filters()?
        .into_iter()
        .map(|f| {
            let field = match f.name.as_str() {
                "instance-id" => Field::InstanceId,
                "instance-state-name" => Field::StateName,
                "instance-state-code" => Field::StateCode,
                "instance-type" => Field::InstanceType,
                "availability-zone" => Field::AvailabilityZone,
                "owner-id" => Field::OwnerId,
                "tag-key" => Field::TagKey,
                name => match name.strip_prefix("tag:") {
                    Some(key) if !key.is_empty() => Field::Tag(key.to_owned()),
                    _ => {
                        return Err(Ec2Error::invalid_value(format!(
                            "The filter '{}' is invalid",
                            echo(name)
                        )));
                    }
                },
            };
            if f.values.is_empty() {
                return Err(Ec2Error::invalid_value(format!(
                    "The filter '{}' requires at least one value",
                    echo(&f.name)
                )));
            }
            Ok(InstanceFilter {
                field,
                values: f.values,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Request {
        ids,
        filters,
        dry_run: p.flag("DryRun")?,
    })
}

impl InstanceFilter {
    pub fn matches(&self, i: &Instance) -> bool {
        let any = |text: &str| {
            self.values
                .iter()
                .any(|v| glob_match(v.as_bytes(), text.as_bytes()))
        };
        match &self.field {
            Field::InstanceId => any(i.id.as_str()),
            Field::StateName => any(i.state().as_str()),
            Field::StateCode => any(&i.state().code().to_string()),
            Field::InstanceType => any(&i.instance_type),
            Field::AvailabilityZone => any(i.availability_zone.as_str()),
            Field::OwnerId => any(i.account.as_str()),
            Field::Tag(key) => i.tags.get(key).is_some_and(|v| any(v)),
            Field::TagKey => i.tags.keys().any(|k| any(k)),
        }
    }
}

/// Handle + encode.
pub async fn handle(call: &Call<'_>) -> Result<String, Ec2Error> {
    let req = parse(call.params)?;
    if req.dry_run {
        return Err(call.dry_run(Action::DescribeInstances, &req.ids));
    }
    let instances = call.service.describe_instances(call.ctx, &req.ids).await?;
    let matching: Vec<_> = instances
        .into_iter()
        .filter(|i| req.filters.iter().all(|f| f.matches(i)))
        .collect();
    Ok(encode(&call.ctx.request_id, &matching, call.launch_time_ms))
}

/// Encode: the fields EC2 always sends for an instance, with fixed values where serialgate has
/// nothing to say (no AMI, no network, no monitoring). Ids that look like EC2's are derived
/// from the instance id, so they are stable across calls and restarts.
pub fn encode(request_id: &str, instances: &[Arc<Instance>], launch_time_ms: u64) -> String {
    let launch_time = iso8601(launch_time_ms);
    let mut x = Xml::response(ACTION, request_id);
    x.open("reservationSet");
    for i in instances {
        let hex = i.id.as_str().strip_prefix("i-").unwrap_or(i.id.as_str());
        x.open("item");
        x.leaf("reservationId", &format!("r-{hex}"));
        x.leaf("ownerId", i.account.as_str());
        x.leaf("groupSet", "");
        x.open("instancesSet");
        x.open("item");
        x.leaf("instanceId", i.id.as_str());
        x.leaf("imageId", &format!("ami-{}", derived_hex("ami", &i.id)));
        x.open("instanceState");
        x.leaf_display("code", i.state().code());
        x.leaf("name", i.state().as_str());
        x.close("instanceState");
        x.leaf("privateDnsName", "");
        x.leaf("dnsName", "");
        x.leaf("reason", "");
        x.leaf_display("amiLaunchIndex", 0);
        x.leaf("productCodes", "");
        x.leaf("instanceType", &i.instance_type);
        x.leaf("launchTime", &launch_time);
        x.open("placement");
        x.leaf("availabilityZone", i.availability_zone.as_str());
        x.leaf("groupName", "");
        x.leaf("tenancy", "default");
        x.close("placement");
        x.open("monitoring");
        x.leaf("state", "disabled");
        x.close("monitoring");
        // EC2 leaves out the addresses an instance does not have.
        if let Some(ip) = i.private_ip {
            x.leaf_display("privateIpAddress", ip);
        }
        if let Some(ip) = i.public_ip {
            x.leaf_display("ipAddress", ip);
        }
        x.leaf("architecture", "x86_64");
        x.leaf("rootDeviceType", "ebs");
        x.leaf("virtualizationType", "hvm");
        // EC2 omits tagSet for an untagged instance; SDKs then leave Tags out.
        if !i.tags.is_empty() {
            x.open("tagSet");
            for (k, v) in &i.tags {
                x.open("item");
                x.leaf("key", k);
                x.leaf("value", v);
                x.close("item");
            }
            x.close("tagSet");
        }
        x.leaf("hypervisor", "xen");
        x.leaf("platformDetails", "Linux/UNIX");
        x.close("item");
        x.close("instancesSet");
        x.close("item");
    }
    x.close("reservationSet");
    x.finish(ACTION)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::collections::BTreeMap;

    use console::{AccountId, AvailabilityZone, InstanceState};

    use super::*;
    use crate::ec2::error::Ec2Code;

    fn instance(tags: &[(&str, &str)]) -> Instance {
        Instance::new(
            InstanceId::parse("i-0123456789abcdef0").unwrap(),
            AccountId::parse("111122223333").unwrap(),
            "t3.micro".into(),
            AvailabilityZone::parse("us-east-1a").unwrap(),
            tags.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            false,
            "sim:".into(),
            InstanceState::Running,
        )
    }

    fn filters(q: &str) -> Result<Vec<InstanceFilter>, Ec2Error> {
        parse(&Params::parse(q.as_bytes())).map(|r| r.filters)
    }

    fn matches(q: &str, i: &Instance) -> bool {
        filters(q).unwrap().iter().all(|f| f.matches(i))
    }

    #[test]
    fn filter_semantics() {
        let i = instance(&[("Team", "infra"), ("Name", "web-1")]);
        assert!(matches(
            "Filter.1.Name=instance-state-name&Filter.1.Value.1=stopped&Filter.1.Value.2=running",
            &i
        ));
        assert!(!matches(
            "Filter.1.Name=instance-state-name&Filter.1.Value.1=stopped",
            &i
        ));
        assert!(matches(
            "Filter.1.Name=instance-state-code&Filter.1.Value.1=16",
            &i
        ));
        assert!(matches("Filter.1.Name=tag%3ATeam&Filter.1.Value.1=in*", &i));
        assert!(!matches(
            "Filter.1.Name=tag%3ATeam&Filter.1.Value.1=Infra",
            &i
        ));
        assert!(!matches(
            "Filter.1.Name=tag%3AMissing&Filter.1.Value.1=*",
            &i
        ));
        assert!(matches("Filter.1.Name=tag-key&Filter.1.Value.1=Na?e", &i));
        assert!(matches(
            "Filter.1.Name=instance-id&Filter.1.Value.1=i-0123*",
            &i
        ));
        assert!(matches(
            "Filter.1.Name=availability-zone&Filter.1.Value.1=us-east-1a&Filter.2.Name=instance-type&Filter.2.Value.1=t3.*&Filter.3.Name=owner-id&Filter.3.Value.1=111122223333",
            &i
        ));
        // Filters are ANDed.
        assert!(!matches(
            "Filter.1.Name=instance-type&Filter.1.Value.1=t3.micro&Filter.2.Name=availability-zone&Filter.2.Value.1=eu-*",
            &i
        ));
    }

    #[test]
    fn bad_filters_are_refused() {
        let e = filters("Filter.1.Name=vpc-id&Filter.1.Value.1=x").unwrap_err();
        assert_eq!(e.code, Ec2Code::InvalidParameterValue);
        assert_eq!(e.message, "The filter 'vpc-id' is invalid");
        assert!(filters("Filter.1.Name=tag%3A&Filter.1.Value.1=x").is_err());
        assert!(filters("Filter.1.Name=instance-id").is_err());
    }

    #[test]
    fn encodes_ec2_shape_with_escaped_tags() {
        let i = Arc::new(instance(&[("Note", "a<b & \"c\"")]));
        let xml = encode("req-1", &[i], 0);
        assert!(xml.contains("<reservationId>r-0123456789abcdef0</reservationId>"));
        assert!(xml.contains("<ownerId>111122223333</ownerId>"));
        assert!(xml.contains("<instanceState><code>16</code><name>running</name></instanceState>"));
        assert!(xml.contains("<launchTime>1970-01-01T00:00:00.000Z</launchTime>"));
        assert!(xml.contains(
            "<tagSet><item><key>Note</key><value>a&lt;b &amp; &quot;c&quot;</value></item></tagSet>"
        ));
        assert!(xml.contains("<placement><availabilityZone>us-east-1a</availabilityZone><groupName/><tenancy>default</tenancy></placement>"));
        let ami = xml
            .split("<imageId>")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap();
        assert!(ami.starts_with("ami-") && ami.len() == 21, "{ami}");
        assert!(!encode("r", &[Arc::new(instance(&[]))], 0).contains("tagSet"));
    }

    #[test]
    fn encodes_the_addresses_it_has() {
        let bare = encode("r", &[Arc::new(instance(&[]))], 0);
        assert!(
            !bare.contains("IpAddress") && !bare.contains("ipAddress"),
            "{bare}"
        );
        let both = instance(&[]).with_addresses(
            Some("54.0.0.7".parse().unwrap()),
            Some("10.0.0.7".parse().unwrap()),
        );
        let xml = encode("r", &[Arc::new(both)], 0);
        assert!(
            xml.contains(
                "<privateIpAddress>10.0.0.7</privateIpAddress><ipAddress>54.0.0.7</ipAddress>"
            ),
            "{xml}"
        );
        let private = instance(&[]).with_addresses(None, Some("10.0.0.8".parse().unwrap()));
        let xml = encode("r", &[Arc::new(private)], 0);
        assert!(
            xml.contains("<privateIpAddress>10.0.0.8</privateIpAddress>")
                && !xml.contains("<ipAddress>")
        );
    }
}
