#!/usr/bin/env python3
"""Prints template.yaml with every Kafka parameter set (both event sources on, provisioned
mode, SASL/SCRAM, a VPC, and the Kafka landing), so `sam validate --lint` checks the template
as a deployment with Kafka would use it. Usage: kafka-template.py TEMPLATE > OUT."""
import re
import sys

ON = {
    "RawLanding": "kafka",
    "MskClusterArn": "arn:aws:kafka:us-east-1:123456789012:cluster/pinpipe-msk/751d2973-a626-431c-9d4e-d7975eb44dd7-2",
    "KafkaBootstrapServers": "kafka-1.example.internal:9096,kafka-2.example.internal:9096",
    "KafkaSaslScramSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:AmazonMSK_pinpipe-AbCdEf",
    "KafkaSubnetA": "subnet-0123456789abcdef0",
    "KafkaSubnetB": "subnet-0fedcba9876543210",
    "KafkaSecurityGroup": "sg-0123456789abcdef0",
    "KafkaMinimumPollers": "2",
    "KafkaLandingBootstrapServers": "b-1.pinpipe-msk.a1bcde.c2.kafka.us-east-1.amazonaws.com:9096",
    "KafkaLandingSecurity": "sasl_scram_512",
}

text = open(sys.argv[1]).read()
for name, value in ON.items():
    pattern = re.compile(rf"(\n  {name}:\n(?:    .*\n)*?    Default: )(.*)\n")
    text, n = pattern.subn(lambda m: f"{m.group(1)}\"{value}\"\n", text, count=1)
    if n != 1:
        sys.exit(f"parameter {name} has no Default in {sys.argv[1]}")
sys.stdout.write(text)
