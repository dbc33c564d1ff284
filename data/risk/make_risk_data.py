#!/usr/bin/env python3
"""Makes the bundled demo task (data/risk/*.jsonl): a financial-risk check in the
seed guide's shape, "[user profile] + [transactions] + 是否高风险?" -> 高风险 / 低风险,
with a strongly imbalanced label (about 1 in 10 high risk). The label follows
from the transactions (night-time foreign transfers, new devices, failed logins,
large amounts against a thin history), with noise, so a model has to read them.

usage: python3 data/risk/make_risk_data.py   (rewrites train.jsonl and eval.jsonl)
"""
import json
import os
import random

JOBS = ["教师", "工程师", "医生", "学生", "销售", "自由职业", "公务员", "厨师", "司机", "退休"]
CITIES = ["北京", "上海", "广州", "深圳", "成都", "杭州", "武汉", "西安"]
SAFE = ["超市购物 {a} 元", "工资入账 {a} 元", "水电缴费 {a} 元", "餐饮消费 {a} 元", "房租支付 {a} 元",
        "手机充值 {a} 元", "网购 {a} 元", "加油 {a} 元"]
RISKY = ["凌晨 {h} 点境外转账 {A} 元", "新设备登录后转账 {A} 元", "连续 {n} 次密码错误后登录",
         "向陌生账户转账 {A} 元", "境外 ATM 取现 {A} 元", "短时间内 {n} 笔大额转出"]


def record(rng, high):
    profile = (f"[用户画像] 年龄 {rng.randint(19, 70)}，职业 {rng.choice(JOBS)}，城市 {rng.choice(CITIES)}，"
               f"开户 {rng.randint(0, 15)} 年，信用分 {rng.randint(500, 820)}")
    events = [rng.choice(SAFE).format(a=rng.randint(10, 3000)) for _ in range(rng.randint(2, 5))]
    n_risky = rng.randint(1, 3) if high else (1 if rng.random() < 0.08 else 0)  # some noise
    for _ in range(n_risky):
        events.insert(rng.randrange(len(events) + 1),
                      rng.choice(RISKY).format(h=rng.randint(1, 5), A=rng.randint(20000, 90000), n=rng.randint(3, 9)))
    prompt = profile + " [交易记录] " + "；".join(events) + " 是否高风险?"
    label = "高风险" if high else "低风险"
    return {"prompt": prompt, "completion": label, "label": label}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    rng = random.Random(2026)
    for name, n in [("train.jsonl", 1200), ("eval.jsonl", 300)]:
        with open(os.path.join(here, name), "w", encoding="utf-8") as f:
            for _ in range(n):
                f.write(json.dumps(record(rng, rng.random() < 0.1), ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
