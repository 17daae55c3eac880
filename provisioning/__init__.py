"""idstation.provisioning: device keys, enrolment, bundles and self-test for field technicians."""
