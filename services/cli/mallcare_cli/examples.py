"""An example complaint with every R1.3 field, as a desk clerk would record it at intake.
Used by `mallcare seed`, the demo, the benchmarks and the tests; override what a case needs."""


def desk_complaint(**overrides):
    body = {
        "mall_id": "sh-xujiahui",
        "channel": "desk",
        "channel_ref": "desk-0001",
        "customer": {"name": "王女士", "phone": "13812345678", "member_id": "M001", "member_tier": "gold"},
        "location": {"area": "fresh produce", "merchant_id": "T-17", "merchant_name": "鲜果坊"},
        "incident_time_band": "morning",
        "staff_involved": ["E1024"],
        "product": {"barcode": "6901234567892", "brand": "佳农", "model": "草莓 500g"},
        "order_no": "SO-778812",
        "description": "昨天买的草莓有三分之一发霉了 🍓",
        "demands": {
            "fact": "1/3 of the strawberries mouldy",
            "expectation": "full refund plus the same value in goods",
        },
        "emotion": "angry",
        "anger_score": 4,
    }
    body.update(overrides)
    return body
