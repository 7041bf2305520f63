#!/usr/bin/env python3
"""gen_change.py: random change-node rules (set/change/delete/move, every typed value, msg/flow/global targets).

Writes a FLOWTEST suite without expectations, for flowtest-record to fill in on
Node-RED (see README.md here):  gen_change.py SEED COUNT OUT.json
"""
import json, random, sys
random.seed(int(sys.argv[1])); N=int(sys.argv[2])
PAY=[0,1,-1,2.5,"1","","abc","ABC","a.b.c","10",True,False,None,[],[1,"a"],{},{"a":1,"b":{"c":2}},{"$buffer":"6869"},"hello world","aaa","1.50"]
PROPS=["payload","payload.a","payload.b.c","topic","newp","payload[0]","payload.x.y","a.b"]
def to_val():
    t=random.choice(["str","num","bool","json","bin","msg","flow","global","env","jsonata","date","str","num"])
    v={"str":lambda:random.choice(["x","","1","abc","a.b"]),
       "num":lambda:random.choice(["1","2.5","-3","abc","","0x10"," 7 "]),
       "bool":lambda:random.choice(["true","false"]),
       "json":lambda:random.choice(["{\"k\":1}","[1,2]","\"s\"","3","null","{bad"]),
       "bin":lambda:random.choice(["[104,105]","\"hi\"","[1,2","[]"]),
       "msg":lambda:random.choice(PROPS),
       "flow":lambda:random.choice(["k","missing","o.p"]),
       "global":lambda:random.choice(["k","missing"]),
       "env":lambda:random.choice(["EV","NOPE"]),
       "jsonata":lambda:random.choice(["payload","$count(payload)","payload & 'x'","$string(payload)","topic","$.payload.a","nothing","$number('x')","{'a': payload}"]),
       "date":lambda:""}[t]()
    return v,t
def rule():
    t=random.choice(["set","set","change","delete","move"])
    r={"t":t,"p":random.choice(PROPS),"pt":random.choice(["msg","msg","msg","flow","global"])}
    if t=="set":
        r["to"],r["tot"]=to_val()
        if r["tot"]=="date": r["to"]=""; r["tot"]="str"
        if random.random()<0.3: r["dc"]=True
    elif t=="change":
        ft=random.choice(["str","num","bool","re","msg","flow","env","str","re"])
        fv={"str":random.choice(["a","1","","l","abc","."]),"num":random.choice(["1","10","2.5"]),"bool":random.choice(["true","false"]),
            "re":random.choice(["a","^a","(l+)","[","\\d","$","."]),"msg":random.choice(["topic","payload"]),"flow":"k","env":"EV"}[ft]
        r["from"]=fv; r["fromt"]=ft; r["to"],r["tot"]=to_val()
        if r["tot"] in ("date","jsonata","bin"): r["to"],r["tot"]=random.choice(["X","$1-","1"]),"str"
    elif t=="move":
        r["to"]=random.choice(PROPS); r["tot"]=random.choice(["msg","msg","flow","global"])
    return r
cases=[]
for i in range(N):
    rules=[rule() for _ in range(random.randint(1,3))]
    ch={"id":"c1","type":"change","name":"","rules":rules,"action":"","property":"","from":"","to":"","reg":False,"wires":[["h1"]]}
    flow=[ch,{"id":"h1","type":"helper","wires":[]}]
    steps=[]
    for j in range(4):
        m={"payload":random.choice(PAY),"topic":random.choice(["t","abc","1",""]),"n":j}
        steps.append({"send":{"node":"c1","msg":m}}); steps.append({"wait":5})
    cases.append({"name":"change fuzz %d"%i,"flow":flow,"env":{"EV":random.choice(["1","abc",""])},
                  "context":{"flow":{"k":random.choice([1,"abc",True,[1],{"p":2}]),"o":{"p":"q"}},"global":{"k":random.choice([0,"10","a"])}},"steps":steps})
json.dump({"suite":"change-fuzz","cases":cases},open(sys.argv[3],"w"),indent=1)
