"""Issue 19: what the gateways compute before they send. Alibaba Cloud's request signature
is checked against the worked examples in its documentation: the SMS guide's SendSms request
(help.aliyun.com document 101343: AccessKey testId/testSecret) and the RPC signature guide's
DescribeRegions request (AccessKey testid/testsecret)."""

import pytest

from notify.gateways import gateway_from
from notify.gateways.aliyun_sms import percent_encode, signature

SEND_SMS_EXAMPLE = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}
DESCRIBE_REGIONS_EXAMPLE = {
    "AccessKeyId": "testid",
    "Action": "DescribeRegions",
    "Format": "XML",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    "SignatureVersion": "1.0",
    "TimeStamp": "2016-02-23T12:46:24Z",
    "Version": "2014-05-26",
}


def test_the_sms_guides_sendsms_example_is_signed_as_the_guide_says():
    assert signature("GET", SEND_SMS_EXAMPLE, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_the_signature_guides_describeregions_example_is_signed_as_the_guide_says():
    assert signature("GET", DESCRIBE_REGIONS_EXAMPLE, "testsecret") == "CT9X0VtwR86fNWSnsc6v8YGOjuE="


def test_the_signature_covers_the_method_the_secret_and_every_parameter():
    signed = signature("GET", SEND_SMS_EXAMPLE, "testSecret")
    assert signature("POST", SEND_SMS_EXAMPLE, "testSecret") != signed
    assert signature("GET", SEND_SMS_EXAMPLE, "testSecreT") != signed
    assert signature("GET", {**SEND_SMS_EXAMPLE, "PhoneNumbers": "15300000002"}, "testSecret") != signed


def test_parameters_are_percent_encoded_the_rfc_3986_way():
    # not as an HTML form encodes them (a space as +, * and ~ escaped the other way round)
    assert percent_encode("a b*c~d-e_f.g") == "a%20b%2Ac~d-e_f.g"
    assert percent_encode("【商场】") == "%E3%80%90%E5%95%86%E5%9C%BA%E3%80%91"
    assert percent_encode('{"text":"/+="}') == "%7B%22text%22%3A%22%2F%2B%3D%22%7D"


def test_a_policy_entry_of_an_unknown_kind_or_without_a_setting_builds_no_gateway():
    with pytest.raises(ValueError, match="'fax'"):
        gateway_from({"kind": "fax", "number": "021-1234"})
    with pytest.raises(TypeError, match="secret"):
        gateway_from({"kind": "webhook", "url": "https://app.example/hook"})
    with pytest.raises(TypeError, match="sendr"):
        gateway_from({"kind": "smtp", "host": "smtp.example", "sendr": "care@mall.example"})
    with pytest.raises(ValueError, match="ASCII"):  # smtplib would fail at the first AUTH
        gateway_from(
            {"kind": "smtp", "host": "smtp.example", "sender": "care@mall.example", "user": "care", "password": "密码"}
        )


def test_each_kind_builds_its_gateway_with_the_defaults_its_docstring_gives():
    smtp = gateway_from({"kind": "smtp", "host": "smtp.example", "sender": "care@mall.example", "starttls": True})
    sms = gateway_from(
        {
            "kind": "aliyun_sms",
            "access_key_id": "LTAI",
            "access_key_secret": "s",
            "sign_name": "商场",
            "template_code": "SMS_1",
        }
    )
    wechat = gateway_from({"kind": "wechat", "appid": "wx1", "secret": "s"})
    webhook = gateway_from({"kind": "webhook", "url": "https://app.example/hook", "secret": "s"})
    assert [gateway.name for gateway in (smtp, sms, wechat, webhook)] == ["smtp", "aliyun_sms", "wechat", "webhook"]
    assert (smtp.relay, smtp.timeout) == (("smtp.example", 587), 10)
    assert (sms.endpoint, sms.region_id, sms.template_param) == (
        "https://dysmsapi.aliyuncs.com/",
        "cn-hangzhou",
        "text",
    )
    assert (wechat.api, wechat.token_margin) == ("https://api.weixin.qq.com", 300)
